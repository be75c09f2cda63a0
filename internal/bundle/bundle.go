package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Format is the version of the bundle layout this package writes and reads.
const Format = 1

// Names inside a bundle archive and a bundle directory.
const (
	ManifestFile  = "manifest.json"
	SignatureFile = "signature.json"
	filesDir      = "files/"
)

// Limits of a bundle read from the store: they bound what a corrupt or
// hostile object can make a reader allocate.
const (
	MaxFiles = 1000
	MaxBytes = 64 << 20 // all files together, uncompressed
)

var (
	// ErrInvalid matches a bundle that cannot be read or has a bad path.
	ErrInvalid = errors.New("bundle: invalid")
	// ErrFileMismatch matches a bundle whose files differ from its
	// manifest: a file changed, missing or added after it was sealed.
	ErrFileMismatch = errors.New("bundle: files do not match the manifest")
	// ErrUnsigned matches a bundle without a signature, refused by [Verify].
	ErrUnsigned = errors.New("bundle: not signed")
	// ErrUntrustedKey matches a bundle signed by a key that is not trusted.
	ErrUntrustedKey = errors.New("bundle: signed by a key that is not trusted")
	// ErrBadSignature matches a signature that does not verify.
	ErrBadSignature = errors.New("bundle: bad signature")
)

// Manifest describes a bundle. Its JSON form, as sealed, is what a
// signature covers.
type Manifest struct {
	// Format is the layout version, [Format].
	Format int `json:"format"`
	// Revision is the number the store gave the bundle; 0 before it is
	// pushed.
	Revision uint64 `json:"revision"`
	// Created is when it was pushed.
	Created time.Time `json:"created"`
	// Author and Message say who pushed it and why.
	Author  string `json:"author"`
	Message string `json:"message,omitempty"`
	// Functions are the functions the bundle defines, in ref order.
	Functions []Function `json:"functions"`
	// Files are the bundle's files, in path order.
	Files []File `json:"files"`
	// Commands are the programs exec functions run: paths on each worker's
	// host, not part of the bundle.
	Commands []string `json:"commands,omitempty"`
}

// Function is one function of a bundle as the manifest lists it.
type Function struct {
	Ref            string   `json:"ref"`
	Kind           string   `json:"kind"` // lua, webhook, exec
	TriggerType    string   `json:"trigger_type"`
	TriggerOptions []string `json:"trigger_options"`
	Priority       int      `json:"priority"`
	// Policy is the failure policy and mode of a PRE function, e.g.
	// "fail/enforce"; "" for others.
	Policy string `json:"policy,omitempty"`
	// Schedule is a SCHEDULED function's schedule, as check prints it.
	Schedule string `json:"schedule,omitempty"`
	// Source is where the function is defined, relative to the bundle,
	// e.g. "functions.yaml functions[0]" or "scripts/quota.lua:12".
	Source string `json:"source"`
}

// File is one file of a bundle.
type File struct {
	// Path is slash-separated and relative to the bundle's root.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// Signature is an ed25519 signature of the sealed manifest by an nkey.
type Signature struct {
	// Key is the signer's public nkey (U...).
	Key string `json:"key"`
	// Sig is the signature of the manifest's bytes, base64url without
	// padding.
	Sig string `json:"sig"`
}

// Bundle is a manifest and the files it lists. A Bundle read from a store
// or an archive is sealed: its manifest bytes are those that were signed.
// A Bundle is not safe for concurrent mutation.
type Bundle struct {
	Manifest Manifest
	// Files are the contents by path.
	Files map[string][]byte
	// Signature is nil when the bundle is not signed.
	Signature *Signature

	raw []byte // the manifest as sealed; nil before
}

// New makes an unsealed bundle of files, filling m.Format and m.Files from
// them. Paths must be relative, slash-separated and clean.
func New(m Manifest, files map[string][]byte) (*Bundle, error) {
	if len(files) > MaxFiles {
		return nil, fmt.Errorf("%w: %d files, at most %d", ErrInvalid, len(files), MaxFiles)
	}
	m.Format = Format
	m.Files = nil
	var total int64
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := checkPath(p); err != nil {
			return nil, err
		}
		total += int64(len(files[p]))
		m.Files = append(m.Files, File{Path: p, Size: int64(len(files[p])), SHA256: digest(files[p])})
	}
	if total > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes of files, at most %d", ErrInvalid, total, MaxBytes)
	}
	return &Bundle{Manifest: m, Files: maps.Clone(files)}, nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkPath refuses a path that could leave the bundle's directory.
func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || path.Clean(p) != p ||
		p == ".." || strings.HasPrefix(p, "../") || p == ManifestFile || p == SignatureFile {
		return fmt.Errorf("%w: file path %q", ErrInvalid, p)
	}
	return nil
}

// seal fixes the manifest's bytes, once: what [Bundle.Sign] signs and
// the store keeps. Changes to b.Manifest after sealing are not kept.
func (b *Bundle) seal() error {
	if b.raw != nil {
		return nil
	}
	slices.SortFunc(b.Manifest.Functions, func(x, y Function) int { return strings.Compare(x.Ref, y.Ref) })
	raw, err := json.MarshalIndent(b.Manifest, "", "  ")
	if err != nil {
		return err
	}
	b.raw = append(raw, '\n')
	return nil
}

// sealed returns the manifest as sealed, decoded afresh, or b.Manifest
// when b is not sealed yet.
func (b *Bundle) sealed() (Manifest, error) {
	if b.raw == nil {
		return b.Manifest, nil
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrInvalid, ManifestFile, err)
	}
	return m, nil
}

// ManifestJSON returns the manifest as sealed (indented JSON).
func (b *Bundle) ManifestJSON() ([]byte, error) {
	if err := b.seal(); err != nil {
		return nil, err
	}
	return b.raw, nil
}

// Check reports whether the files are exactly those of the manifest (as
// sealed), with the sizes and sha256 it lists; a difference matches
// [ErrFileMismatch].
func (b *Bundle) Check() error {
	m, err := b.sealed()
	if err != nil {
		return err
	}
	var errs []error
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
		data, ok := b.Files[f.Path]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%w: %s is missing", ErrFileMismatch, f.Path))
		case int64(len(data)) != f.Size || digest(data) != f.SHA256:
			errs = append(errs, fmt.Errorf("%w: %s has sha256 %s, the manifest says %s", ErrFileMismatch, f.Path, digest(data), f.SHA256))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		if !listed[p] {
			errs = append(errs, fmt.Errorf("%w: %s is not in the manifest", ErrFileMismatch, p))
		}
	}
	return errors.Join(errs...)
}

// Encode writes the bundle as a gzip-compressed tar archive:
// manifest.json, signature.json if signed, and each file under files/.
func (b *Bundle) Encode() ([]byte, error) {
	if err := b.seal(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mtime := b.Manifest.Created
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(ManifestFile, b.raw); err != nil {
		return nil, err
	}
	if b.Signature != nil {
		sig, err := json.Marshal(b.Signature)
		if err != nil {
			return nil, err
		}
		if err := add(SignatureFile, sig); err != nil {
			return nil, err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		if err := add(filesDir+p, b.Files[p]); err != nil {
			return nil, err
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode reads an archive written by [Bundle.Encode]. It checks the
// layout and the limits, not the files against the manifest: call
// [Bundle.Check] or [Verify].
func Decode(data []byte) (*Bundle, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	tr := tar.NewReader(zr)
	b := &Bundle{Files: map[string][]byte{}}
	var sig []byte
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalid, h.Name)
		}
		if total += h.Size; total > MaxBytes+1<<20 || len(b.Files) >= MaxFiles {
			return nil, fmt.Errorf("%w: larger than %d bytes or %d files", ErrInvalid, MaxBytes, MaxFiles)
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, h.Name, err)
		}
		switch name := h.Name; {
		case name == ManifestFile:
			b.raw = data
		case name == SignatureFile:
			sig = data
		case strings.HasPrefix(name, filesDir):
			p := strings.TrimPrefix(name, filesDir)
			if err := checkPath(p); err != nil {
				return nil, err
			}
			if _, dup := b.Files[p]; dup {
				return nil, fmt.Errorf("%w: %s twice", ErrInvalid, p)
			}
			b.Files[p] = data
		default:
			return nil, fmt.Errorf("%w: unexpected entry %s", ErrInvalid, name)
		}
	}
	if b.raw == nil {
		return nil, fmt.Errorf("%w: no %s", ErrInvalid, ManifestFile)
	}
	if b.Manifest, err = b.sealed(); err != nil {
		return nil, err
	}
	if b.Manifest.Format != Format {
		return nil, fmt.Errorf("%w: format %d, this version reads format %d", ErrInvalid, b.Manifest.Format, Format)
	}
	if sig != nil {
		b.Signature = &Signature{}
		if err := json.Unmarshal(sig, b.Signature); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, SignatureFile, err)
		}
	}
	return b, nil
}

// WriteDir materialises the bundle in dir, which must not exist or be
// empty: each file at its path, with manifest.json and signature.json
// beside them. The functions.yaml written there loads with
// config.LoadDefinitions.
func (b *Bundle) WriteDir(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("bundle: %s is not empty", dir)
	}
	raw, err := b.ManifestJSON()
	if err != nil {
		return err
	}
	out := maps.Clone(b.Files)
	out[ManifestFile] = raw
	if b.Signature != nil {
		sig, err := json.MarshalIndent(b.Signature, "", "  ")
		if err != nil {
			return err
		}
		out[SignatureFile] = append(sig, '\n')
	}
	return writeFiles(dir, out)
}

// WriteFiles writes the bundle's files (not its manifest) under dir, which
// must not exist or be empty, without sealing the bundle.
func (b *Bundle) WriteFiles(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("bundle: %s is not empty", dir)
	}
	return writeFiles(dir, b.Files)
}

func writeFiles(dir string, out map[string][]byte) error {
	for _, p := range slices.Sorted(maps.Keys(out)) {
		if p != ManifestFile && p != SignatureFile {
			if err := checkPath(p); err != nil {
				return err
			}
		}
		name := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(name, out[p], 0o600); err != nil {
			return err
		}
	}
	return nil
}
