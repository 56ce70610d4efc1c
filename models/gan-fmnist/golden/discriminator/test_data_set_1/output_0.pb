
BlogitJFlԾ