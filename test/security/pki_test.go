package security_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
)

// pki is a test certificate authority with a server certificate for
// 127.0.0.1 and a client certificate, written as PEM files.
type pki struct {
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
	pool                  *x509.CertPool
	server                tls.Certificate
}

// newPKI creates a CA and its certificates in a new temporary directory.
func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = proctest.WriteFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, file string) (certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile = proctest.WriteFile(t, dir, file+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		keyFile = proctest.WriteFile(t, dir, file+"-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
		return certFile, keyFile
	}
	p.serverCert, p.serverKey = leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, "server")
	p.clientCert, p.clientKey = leaf(3, "trigger-worker", x509.ExtKeyUsageClientAuth, "client")
	p.server, err = tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// withTLS makes a server require TLS and verify client certificates
// against the CA of p.
func withTLS(p *pki) natstest.Option {
	return natstest.WithOptions(func(o *server.Options) {
		o.TLS, o.TLSVerify = true, true
		o.TLSTimeout = 5
		o.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{p.server},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    p.pool,
			MinVersion:   tls.VersionTLS12,
		}
	})
}

// operator is a test operator with one account, for a server in operator
// (JWT) mode with a memory resolver.
type operator struct {
	claims     *jwt.OperatorClaims
	accountKey nkeys.KeyPair
	accountJWT string
	sysPub     string
	sysJWT     string
}

func newOperator(t testing.TB) *operator {
	t.Helper()
	okp, err := nkeys.CreateOperator()
	if err != nil {
		t.Fatal(err)
	}
	opub, err := okp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "triggerbus-test"
	account := func(name string) (nkeys.KeyPair, string, string) {
		akp, err := nkeys.CreateAccount()
		if err != nil {
			t.Fatal(err)
		}
		apub, err := akp.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		ac := jwt.NewAccountClaims(apub)
		ac.Name = name
		ajwt, err := ac.Encode(okp)
		if err != nil {
			t.Fatal(err)
		}
		return akp, apub, ajwt
	}
	o := &operator{claims: oc}
	_, o.sysPub, o.sysJWT = account("SYS")
	oc.SystemAccount = o.sysPub
	o.accountKey, _, o.accountJWT = account("TRIGGERBUS")
	return o
}

// serverOption runs a server in operator mode that trusts o and knows its
// accounts.
func (o *operator) serverOption() natstest.Option {
	return natstest.WithOptions(func(so *server.Options) {
		r := &server.MemAccResolver{}
		apub, _ := o.accountKey.PublicKey()
		_ = r.Store(apub, o.accountJWT)
		_ = r.Store(o.sysPub, o.sysJWT)
		so.TrustedOperators = []*jwt.OperatorClaims{o.claims}
		so.AccountResolver = r
		so.SystemAccount = o.sysPub
	})
}

// creds writes the credentials file of a new user of o's account (signed
// by signer, o's account key when nil) and returns its path and the user's
// seed.
func (o *operator) creds(t testing.TB, dir, name string, signer nkeys.KeyPair) (string, string) {
	t.Helper()
	if signer == nil {
		signer = o.accountKey
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, err := ukp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	uc := jwt.NewUserClaims(upub)
	uc.Name = name
	ujwt, err := uc.Encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := ukp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	return proctest.WriteFile(t, dir, name+".creds", string(creds)), string(seed)
}

// nkeyUser creates a user nkey, writes its seed file and returns the
// path, the seed and the public key.
func nkeyUser(t testing.TB, dir, name string) (path, seed, pub string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	s, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	pub, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return proctest.WriteFile(t, dir, name+".nk", string(s)), string(s), pub
}
