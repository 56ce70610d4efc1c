
BlogitJM:«¾