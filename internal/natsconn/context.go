package natsconn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Context is a connection context saved by the nats CLI (nats context
// save NAME): the JSON file NAME.json in the context directory (see
// [ContextDir]). Only the connection settings are read; paths in it may
// start with ~ for the home directory.
type Context struct {
	Name        string `json:"-"`
	Description string `json:"description"`
	URL         string `json:"url"`
	Token       string `json:"token"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Creds       string `json:"creds"`
	NKey        string `json:"nkey"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	// NSCLookup, UserJWT and UserSeed are settings this reader does not
	// support: a context that uses them is refused rather than half used.
	NSCLookup string `json:"nsc"`
	UserJWT   string `json:"user_jwt"`
	UserSeed  string `json:"user_seed"`
}

// ContextDir is where the nats CLI keeps its contexts:
// $XDG_CONFIG_HOME/nats/context, else ~/.config/nats/context.
func ContextDir() (string, error) {
	base := os.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("nats context: %w", err)
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "nats", "context"), nil
}

// contextName is what the nats CLI accepts as a context name.
var contextName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// LoadContext reads the saved context name.
func LoadContext(name string) (Context, error) {
	if !contextName.MatchString(name) || strings.Trim(name, ".") == "" {
		return Context{}, fmt.Errorf("nats context %q: not a context name", name)
	}
	dir, err := ContextDir()
	if err != nil {
		return Context{}, err
	}
	path := filepath.Join(dir, name+".json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Context{}, fmt.Errorf("nats context %q: no %s (nats context ls lists the saved ones)", name, path)
	}
	if err != nil {
		return Context{}, fmt.Errorf("nats context %q: %w", name, err)
	}
	var c Context
	if err := json.Unmarshal(data, &c); err != nil {
		return Context{}, fmt.Errorf("nats context %q: %s: %w", name, path, err)
	}
	c.Name = name
	switch {
	case c.NSCLookup != "":
		return Context{}, fmt.Errorf("nats context %q: nsc lookups are not supported: save the context with --creds", name)
	case c.UserJWT != "" || c.UserSeed != "":
		return Context{}, fmt.Errorf("nats context %q: inline user_jwt and user_seed are not supported: save the context with --creds", name)
	}
	for _, p := range []*string{&c.Creds, &c.NKey, &c.Cert, &c.Key, &c.CA} {
		if *p, err = expandHome(*p); err != nil {
			return Context{}, fmt.Errorf("nats context %q: %w", name, err)
		}
	}
	return c, nil
}

// expandHome replaces a leading ~ of path with the home directory.
func expandHome(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, "~")
	if !ok || (rest != "" && rest[0] != '/') {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return home + rest, nil
}
