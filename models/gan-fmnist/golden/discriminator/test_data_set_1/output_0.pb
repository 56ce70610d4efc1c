
BlogitJ„(Q¾