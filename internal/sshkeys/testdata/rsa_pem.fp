2048 SHA256:Kkgw+blFUfqZNimIs46tXsm2k9Fx2URbVMNqT9rfbwc rsa-pem@test (RSA)
