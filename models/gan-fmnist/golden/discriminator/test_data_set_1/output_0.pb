
BlogitJ
¾