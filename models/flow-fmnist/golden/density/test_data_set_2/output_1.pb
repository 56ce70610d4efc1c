
Blog_probJt¿|Ä