
BlogitJò>è¾