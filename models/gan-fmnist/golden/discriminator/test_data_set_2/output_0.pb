
BlogitJ’+>