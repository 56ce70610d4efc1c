
BlogitJÞZd¾