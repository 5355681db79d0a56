//go:build tools

// Package tools pins modules that later parts of certmint use, so that
// helpers working in parallel share one go.mod without racing to edit it.
package tools

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/go-acme/lego/v4/lego"
	_ "github.com/go-gormigrate/gormigrate/v2"
	_ "github.com/labstack/echo/v4"
	_ "github.com/miekg/dns"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/pflag"
	_ "github.com/zmap/zlint/v3"
	_ "golang.org/x/crypto/acme"
	_ "gopkg.in/yaml.v3"
	_ "gorm.io/driver/postgres"
	_ "gorm.io/driver/sqlite"
	_ "gorm.io/gorm"
	_ "software.sslmate.com/src/go-pkcs12"
)
