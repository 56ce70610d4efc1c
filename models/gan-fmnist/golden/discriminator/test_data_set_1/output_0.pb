
BlogitJ´Š¾