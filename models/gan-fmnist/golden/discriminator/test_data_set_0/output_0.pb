
BlogitJ&ھ