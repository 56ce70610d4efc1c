

BlogitsJ(y"@£8ApM
Áˆb@»ßwÀÇH¿fð¼¾ƒa„ÁC«ìÀ‘fÁ