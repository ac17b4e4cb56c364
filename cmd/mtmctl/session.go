package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// session is what login saves: the server and the tokens of one sign-in.
// The file is 0600 because the tokens are credentials.
type session struct {
	Server           string    `json:"server"`
	Email            string    `json:"email"`
	AccountID        string    `json:"account_id"`
	Role             string    `json:"role"`
	PharmacyID       string    `json:"pharmacy_id"`
	AccessToken      string    `json:"access_token"`
	AccessExpiresAt  time.Time `json:"access_expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	// DeviceToken marks this machine as one that signed in to the account
	// before: its failed logins then have their own budget on the server.
	DeviceToken string `json:"device_token,omitempty"`
}

func (s *session) setTokens(t *mtmv1.TokenPair) {
	s.AccessToken = t.GetAccessToken()
	s.AccessExpiresAt = t.GetAccessTokenExpiresAt().AsTime()
	s.RefreshToken = t.GetRefreshToken()
	s.RefreshExpiresAt = t.GetRefreshTokenExpiresAt().AsTime()
}

// remote holds the flags every server command shares.
type remote struct {
	server    *string
	tokenFile *string
}

func addRemoteFlags(sys system, fs *flag.FlagSet) remote {
	return remote{
		server:    fs.String("server", sys.getenv("MTM_SERVER"), "server base `URL`, e.g. http://127.0.0.1:8080 (MTM_SERVER; default: the saved session's)"),
		tokenFile: fs.String("token-file", sys.getenv("MTM_TOKEN_FILE"), "session `file` (MTM_TOKEN_FILE; default mtmctl/session.json in the user config dir)"),
	}
}

func (r remote) path(sys system) (string, error) {
	if *r.tokenFile != "" {
		return *r.tokenFile, nil
	}
	dir, err := sys.userConfigDir()
	if err != nil {
		return "", fmt.Errorf("no --token-file and no user config directory: %w", err)
	}
	return filepath.Join(dir, "mtmctl", "session.json"), nil
}

func checkServerURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server %q: want a URL like http://127.0.0.1:8080", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

func loadSession(path string) (session, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return session{}, errors.New("not signed in: run `mtmctl login --server URL --email E` first")
	}
	if err != nil {
		return session{}, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return session{}, fmt.Errorf("session file %s is readable by others (mode %v): run chmod 600 on it, or log in again", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return session{}, err
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return session{}, fmt.Errorf("session file %s: %w", path, err)
	}
	return s, nil
}

// saveSession writes s to path with mode 0600, atomically, creating the
// directory with mode 0700.
func saveSession(path string, s session) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("saving session: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".session-*")
	if err != nil {
		return fmt.Errorf("saving session: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("saving session: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("saving session: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving session: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving session: %w", err)
	}
	return nil
}

// client is a signed-in connection to a server.
type client struct {
	care mtmv1connect.CareServiceClient
	msg  mtmv1connect.MessagingServiceClient
	// server and auth are what `call` builds its clients for any method
	// from: the server's base URL and the interceptor that signs requests.
	server string
	auth   connect.Interceptor
}

// refreshMargin renews the access token this long before it expires.
const refreshMargin = 30 * time.Second

// connect loads the session, renews its access token when it is about to
// expire (saving the new pair), and returns clients that send it.
func (r remote) connect(ctx context.Context, sys system) (client, error) {
	path, err := r.path(sys)
	if err != nil {
		return client{}, err
	}
	s, err := loadSession(path)
	if err != nil {
		return client{}, err
	}
	server := s.Server
	if *r.server != "" {
		server = *r.server
	}
	if server, err = checkServerURL(server); err != nil {
		return client{}, err
	}
	if sys.now().Add(refreshMargin).After(s.AccessExpiresAt) {
		if !sys.now().Before(s.RefreshExpiresAt) {
			return client{}, errors.New("session expired: run `mtmctl login` again")
		}
		authc := mtmv1connect.NewAuthServiceClient(sys.http, server)
		res, err := authc.Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: s.RefreshToken}))
		if err != nil {
			return client{}, fmt.Errorf("renewing the session: %w (run `mtmctl login` again)", err)
		}
		s.setTokens(res.Msg.GetTokens())
		if err := saveSession(path, s); err != nil {
			return client{}, err
		}
	}
	bearer := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+s.AccessToken)
			return next(ctx, req)
		}
	})
	return client{
		care:   mtmv1connect.NewCareServiceClient(sys.http, server, connect.WithInterceptors(bearer)),
		msg:    mtmv1connect.NewMessagingServiceClient(sys.http, server, connect.WithInterceptors(bearer)),
		server: server,
		auth:   bearer,
	}, nil
}

// explain turns Connect errors into advice for the person at the terminal.
func explain(op string, err error) error {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated:
		return fmt.Errorf("%s: not signed in or session ended: run `mtmctl login` again (%w)", op, err)
	case connect.CodePermissionDenied:
		return fmt.Errorf("%s: your account may not do this (%w)", op, err)
	case connect.CodeUnavailable:
		return fmt.Errorf("%s: server unavailable; is mtmd running? (%w)", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
