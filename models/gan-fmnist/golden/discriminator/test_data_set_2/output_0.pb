
BlogitJ¬Ìm¾