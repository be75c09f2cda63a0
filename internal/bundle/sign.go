package bundle

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nkeys"
)

// Sign seals the bundle and signs its manifest with kp, an nkey seed of a
// user key (SU...), replacing any signature.
func (b *Bundle) Sign(kp nkeys.KeyPair) error {
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("bundle: sign: %w", err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return fmt.Errorf("bundle: sign: %s is not a user key (make one with functions keygen)", pub)
	}
	if err := b.seal(); err != nil {
		return err
	}
	sig, err := kp.Sign(b.raw)
	if err != nil {
		return fmt.Errorf("bundle: sign: %w", err)
	}
	b.Signature = &Signature{Key: pub, Sig: base64.RawURLEncoding.EncodeToString(sig)}
	return nil
}

// Verify accepts b only when it is signed by one of trusted (public user
// nkeys), the signature verifies over the manifest as sealed, and the
// files match the hashes that manifest lists. It refuses an unsigned
// bundle ([ErrUnsigned]), one signed by another key ([ErrUntrustedKey]), a
// signature that does not verify ([ErrBadSignature]) and files that differ
// ([ErrFileMismatch]). With no trusted key it refuses every bundle.
func Verify(b *Bundle, trusted []string) error {
	if len(trusted) == 0 {
		return fmt.Errorf("%w: no trusted keys", ErrUntrustedKey)
	}
	if b.Signature == nil || b.raw == nil {
		return ErrUnsigned
	}
	if !slices.Contains(trusted, b.Signature.Key) {
		return fmt.Errorf("%w: %s", ErrUntrustedKey, b.Signature.Key)
	}
	pub, err := nkeys.FromPublicKey(b.Signature.Key)
	if err != nil {
		return fmt.Errorf("%w: key %s: %v", ErrBadSignature, b.Signature.Key, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(b.Signature.Sig)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := pub.Verify(b.raw, sig); err != nil {
		return fmt.Errorf("%w: by %s: %v", ErrBadSignature, b.Signature.Key, err)
	}
	return b.Check()
}

// ReadKey reads an nkey seed file (the first line that is a seed, as
// functions keygen writes, or an nsc-style decorated file).
func ReadKey(path string) (nkeys.KeyPair, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: signing key: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "SU") {
			kp, err := nkeys.FromSeed([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("bundle: signing key %s: %w", path, err)
			}
			return kp, nil
		}
	}
	return nil, fmt.Errorf("bundle: signing key %s: %w", path, errors.New("no user seed (SU...) in the file"))
}

// NewKey makes a user nkey for signing bundles; it returns the seed (keep
// it secret) and the public key (give it to the workers as a trusted key).
func NewKey() (seed []byte, public string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	if seed, err = kp.Seed(); err != nil {
		return nil, "", err
	}
	public, err = kp.PublicKey()
	return seed, public, err
}
