package registry

//go:generate go run ./internal/gen -sources sources -o zz_generated.go
