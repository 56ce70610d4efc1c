
BlogitJJý7¾