
BlogitJÊý1¾