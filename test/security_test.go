package test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
)

// memberPermissions are exactly what README.md says a member of group G
// needs.
func memberPermissions(g string) *server.Permissions {
	s := "PARTI_" + g
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"parti." + g + ".>",
			"$JS.API.STREAM.INFO." + s,
			"$JS.API.STREAM.CREATE." + s,
			"$JS.API.STREAM.MSG.GET." + s,
			"$JS.API.CONSUMER.CREATE." + s + ".>",
			"$JS.API.CONSUMER.DELETE." + s + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + s + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// replayPermissions are the read-only ones: no publish on the group's
// subjects.
func replayPermissions(g string) *server.Permissions {
	s := "PARTI_" + g
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.STREAM.INFO." + s,
			"$JS.API.STREAM.MSG.GET." + s,
			"$JS.API.CONSUMER.CREATE." + s + ".>",
			"$JS.API.CONSUMER.DELETE." + s + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + s + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

func TestMembersWorkWithExactlyTheDocumentedPermissions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := natstest.Options(t.TempDir())
	opts.Users = []*server.User{
		{Username: "member", Password: "m", Permissions: memberPermissions("secure")},
		{Username: "reader", Password: "r", Permissions: replayPermissions("secure")},
		{Username: "other", Password: "o", Permissions: memberPermissions("elsewhere")},
	}
	s := natstest.Start(t, opts)
	_, js := natstest.Connect(t, s.ClientURL(), nats.UserInfo("member", "m"))
	f := newFleet(t, js, "secure", 16)
	coldStart(t, ctx, f, 2)
	f.join(ctx, "third")
	f.waitSettled(30 * time.Second)

	// A reader sees the log but cannot write to it.
	_, rjs := natstest.Connect(t, s.ClientURL(), nats.UserInfo("reader", "r"))
	st, err := rjs.Stream(ctx, "PARTI_secure")
	if err != nil {
		t.Fatalf("reader: stream info: %v", err)
	}
	subj, _ := events.NewSubjects("secure")
	if _, err := st.GetLastMsgForSubject(ctx, subj.Log()); err != nil {
		t.Fatalf("reader: get last log message: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	if _, err := rjs.Publish(pctx, subj.Log(), events.MustEncode(1, &events.WindowClosed{By: "intruder"})); err == nil {
		t.Fatal("the read-only user published into the group's log")
	}
	// A member of another group cannot publish into this one either.
	_, ojs := natstest.Connect(t, s.ClientURL(), nats.UserInfo("other", "o"))
	if _, err := ojs.Publish(pctx, subj.Log(), []byte("x")); err == nil {
		t.Fatal("a member of another group published into this group's log")
	}
	if _, err := parti.Join(pctx, ojs, parti.Config{Group: "secure", Timings: testTimings()}); err == nil {
		t.Fatal("a member without permissions for the group joined it")
	}
	f.checkNoOverlap()
}

func TestMembersOverTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	opts := natstest.Options(t.TempDir())
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	opts.TLSConfig = tc
	opts.TLS = true
	s := natstest.Start(t, opts)
	_, err = nats.Connect(s.ClientURL(), nats.Timeout(2*time.Second))
	if err == nil {
		t.Fatal("a plain connection to a TLS-only server succeeded")
	}
	_, js := natstest.Connect(t, "tls://"+s.Addr().String(), nats.RootCAs(certFile))
	f := newFleet(t, js, "tls", 8)
	coldStart(t, ctx, f, 2)
	f.checkNoOverlap()
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "parti-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
