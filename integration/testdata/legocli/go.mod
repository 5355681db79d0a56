module legocli

go 1.26

require github.com/go-acme/lego/v4 v4.34.0
