
BlogitJY…¾