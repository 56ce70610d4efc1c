
BlogitJƒP¾