package integration

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	opstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// An OpenID provider for the console tests: zitadel/oidc's example OP
// (pkg/op with the example's in-memory storage and login page), with
// test users that carry a "groups" claim. It speaks the real protocol:
// discovery, authorization code with PKCE, signed ID tokens, JWKS.

// opUser is a user of the test provider; the password is opPassword.
type opUser struct {
	ID, Name string
	Groups   []string
}

const opPassword = "provider-password-1"

// opUsers implements the example storage's UserStore.
type opUsers []opUser

func (u opUsers) find(match func(opUser) bool) *opstorage.User {
	i := slices.IndexFunc(u, match)
	if i < 0 {
		return nil
	}
	x := u[i]
	return &opstorage.User{ID: x.ID, Username: x.Name, Password: opPassword, Email: x.Name + "@corp.test", EmailVerified: true}
}
func (u opUsers) GetUserByID(id string) *opstorage.User {
	return u.find(func(x opUser) bool { return x.ID == id })
}
func (u opUsers) GetUserByUsername(name string) *opstorage.User {
	return u.find(func(x opUser) bool { return x.Name == name })
}
func (u opUsers) ExampleClientID() string { return opstorage.ServiceUserID }

// groupsStorage adds preferred_username and groups to the ID token, as
// Keycloak, Dex or Entra do with a groups mapper.
type groupsStorage struct {
	*opstorage.Storage
	users opUsers
}

func (s *groupsStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	for _, u := range s.users {
		if u.ID == req.GetSubject() {
			ui.PreferredUsername = u.Name
			ui.AppendClaims("groups", u.Groups)
		}
	}
	return nil
}

// testOP is the provider, listening on 127.0.0.1 before its client is
// registered: the console's redirect URI is known only once the server
// under test has its port.
type testOP struct {
	Issuer  string
	handler atomic.Value // http.Handler
}

func startOP(t *testing.T) *testOP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &testOP{Issuer: "http://" + ln.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _ := o.handler.Load().(http.Handler)
		if h == nil {
			http.Error(w, "provider not configured yet", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return o
}

// Configure registers the console as a confidential web client and
// sets the users.
func (o *testOP) Configure(clientID, secret, redirectURI string, users ...opUser) {
	clients := map[string]*opstorage.Client{clientID: opstorage.WebClient(clientID, secret, redirectURI)}
	st := &groupsStorage{Storage: opstorage.NewStorageWithClients(opUsers(users), clients), users: users}
	o.handler.Store(http.Handler(exampleop.SetupServer(o.Issuer, st, nil, false)))
}
