
BlogitJåº|¾