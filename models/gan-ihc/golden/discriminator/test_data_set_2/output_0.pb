
BlogitJ¿a¾