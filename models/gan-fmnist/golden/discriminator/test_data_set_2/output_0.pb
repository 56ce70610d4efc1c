
BlogitJÊX&æ