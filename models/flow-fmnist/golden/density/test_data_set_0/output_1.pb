
Blog_probJЮУД