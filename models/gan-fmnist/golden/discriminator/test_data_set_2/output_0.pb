
BlogitJ…•1¿