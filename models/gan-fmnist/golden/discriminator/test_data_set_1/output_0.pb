
BlogitJSp¾