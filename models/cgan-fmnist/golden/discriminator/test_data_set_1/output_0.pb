
BlogitJ0~G¾