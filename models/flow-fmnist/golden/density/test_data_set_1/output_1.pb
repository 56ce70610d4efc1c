
Blog_probJšuÅ