
BlogitJÜ¸l¾