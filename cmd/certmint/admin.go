package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
	"github.com/certmint/certmint/web"
)

func init() { extraCommands = append(extraCommands, newAdminCmd) }

// adminSubcommands lets other files add `admin` subcommands (eab.go).
var adminSubcommands []func(*adminTarget) *cobra.Command

// adminTarget names the database the offline admin commands work on.
type adminTarget struct {
	data string
	db   string
}

func (t *adminTarget) flags(cmd *cobra.Command) { t.flagsOn(cmd.PersistentFlags()) }

// flagsOn registers --data and --db on fs: a command's own flags when its
// subcommands take no database (backup and its verify).
func (t *adminTarget) flagsOn(fs *pflag.FlagSet) {
	fs.StringVar(&t.data, "data", "./certmint-data", "data directory of the server (its SQLite database)")
	fs.StringVar(&t.db, "db", "", "database URL, e.g. postgres://user:pass@host:5432/db (instead of --data)")
}

// open opens the server's database without starting a server. A missing
// SQLite database is an error, not a new empty one: an admin user in a
// database the server never reads would be a silent mistake.
func (t *adminTarget) open(ctx context.Context) (storage.Store, error) {
	dsn := t.db
	if dsn == "" {
		dsn = filepath.Join(t.data, "certmint.db")
		if _, err := os.Stat(dsn); err != nil {
			return nil, usagef("no database at %s; run `certmint serve --data %s` once first, or give --db", dsn, t.data)
		}
	} else if path := strings.TrimPrefix(dsn, "sqlite:"); !isPostgres(dsn) {
		// The same for a SQLite --db: `audit verify` on a mistyped path
		// would otherwise create an empty database and call it intact.
		if _, err := os.Stat(path); err != nil {
			return nil, usagef("no database at %s; give the --db of a server that ran, or --data", path)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := storage.Open(ctx, dsn, storage.Options{Logger: newLogger("warn")})
	if err != nil {
		return nil, fmt.Errorf("open the database %s: %w", redactDSN(dsn), err)
	}
	return st, nil
}

func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage console users offline, on the data directory or database",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("admin needs a subcommand: user or eab (see --help)")
		},
	}
	var t adminTarget
	t.flags(cmd)
	user := &cobra.Command{
		Use:   "user",
		Short: "Add console users, set their passwords, list them",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("admin user needs add, passwd or list (see --help)")
		},
	}
	user.AddCommand(newUserAddCmd(&t, false), newUserAddCmd(&t, true), newUserListCmd(&t))
	cmd.AddCommand(user)
	for _, sub := range adminSubcommands {
		cmd.AddCommand(sub(&t))
	}
	return cmd
}

// newUserAddCmd is `user add NAME` or, with passwd, `user passwd NAME`.
// The password comes from --password-file or stdin, never from a flag
// value, so it does not show up in shell history or ps.
func newUserAddCmd(t *adminTarget, passwd bool) *cobra.Command {
	var pwFile, roleName string
	use, short := "add NAME", "Add a console user"
	if passwd {
		use, short = "passwd NAME", "Set a console user's password (ends the user's sessions and lifts a lock)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
				return usagef("%s needs exactly one user name, e.g. `%s ops`", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.TrimSpace(args[0])
			role, err := web.ParseRole(roleName)
			if roleName != "" && err != nil {
				return usagef("--role %q must be viewer, operator or admin", roleName)
			}
			pw, err := readPassword(pwFile, cmd.InOrStdin())
			if err != nil {
				return err
			}
			hash, err := web.HashPassword(pw)
			if err != nil {
				return usagef("%v", err)
			}
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := cmd.Context()
			action := audit.UserAdd
			if passwd {
				action = audit.UserPassword
				err = st.SetAdminPassword(ctx, name, hash)
				if errors.Is(err, storage.ErrNotFound) {
					return usagef("there is no console user %q; add it with `certmint admin user add %s`", name, name)
				}
				if err == nil && role != "" {
					err = st.SetAdminRole(ctx, name, string(role))
				}
			} else {
				if role == "" {
					role = web.RoleAdmin
				}
				err = st.CreateAdminUser(ctx, &storage.AdminUser{Username: name, PasswordHash: hash, Role: string(role), Source: "local"})
				if errors.Is(err, storage.ErrConflict) {
					return usagef("console user %q exists already; use `certmint admin user passwd %s`", name, name)
				}
			}
			if err != nil {
				return err
			}
			detail := ""
			if role != "" {
				detail = "role " + string(role)
			}
			_ = st.AddAuditEvent(ctx, audit.Event{Actor: "cli", Action: action, Target: audit.User(name), Detail: detail, RemoteAddr: "local"})
			if passwd {
				fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", name)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "console user %s added\n", name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pwFile, "password-file", "", "read the password from this file (default: stdin)")
	roleHelp := "console role: viewer, operator or admin (default admin)"
	if passwd {
		roleHelp = "also set the console role: viewer, operator or admin"
	}
	cmd.Flags().StringVar(&roleName, "role", "", roleHelp)
	return cmd
}

// readPassword takes the first line of the file or of stdin.
func readPassword(file string, stdin io.Reader) (string, error) {
	r := stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", usagef("cannot read --password-file %s: %v", file, errors.Unwrap(err))
		}
		defer f.Close()
		r = f
	} else if st, ok := stdin.(*os.File); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(os.Stderr, "Password (input is shown; prefer --password-file): ")
		}
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usagef("no password given; pipe it on stdin or use --password-file FILE")
	}
	return pw, nil
}

func newUserListCmd(t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List console users",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			users, err := st.ListAdminUsers(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "USER\tROLE\tSTATE\tSIGNS IN WITH\tCREATED\tLAST SIGN-IN")
			for _, u := range users {
				last := "never"
				if u.LastLoginAt != nil {
					last = u.LastLoginAt.Format(time.RFC3339)
				}
				state := "active"
				if u.Disabled {
					state = "disabled"
				}
				via := "password"
				if u.Source == "oidc" {
					via = "identity provider"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, u.Role, state, via, u.CreatedAt.Format(time.RFC3339), last)
			}
			return w.Flush()
		},
	}
}
