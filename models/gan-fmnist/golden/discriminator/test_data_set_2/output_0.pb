
BlogitJ)Ã‚¾