
BlogitJym3½