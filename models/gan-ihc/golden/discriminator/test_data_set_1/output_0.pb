
BlogitJns›¾