package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/certmint/certmint/storage"
)

// ensureAdmin creates the console's first admin user on first start.
// (Filled in with the console.)
func ensureAdmin(ctx context.Context, store storage.Store, dataDir string, log *slog.Logger) error {
	return nil
}

// adminHandler is the console; nil while there is none.
func (a *app) adminHandler() http.Handler { return nil }
