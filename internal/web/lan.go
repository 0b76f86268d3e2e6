package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// listenLAN opens the TLS listener for other devices, with a fresh
// self-signed certificate. The browser on the phone warns about it; the
// pairing link carries its SHA-256 fingerprint to compare with the one the
// browser shows.
func (s *Server) listenLAN() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("failed to make the UI's TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return fmt.Errorf("failed to make the UI's TLS certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "grapevine node"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	host, _, err := net.SplitHostPort(s.cfg.LANAddr)
	if err != nil {
		return fmt.Errorf("failed to read the LAN UI address %q: %w", s.cfg.LANAddr, err)
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("failed to make the UI's TLS certificate: %w", err)
	}
	sum := sha256.Sum256(der)
	s.certFP = hex.EncodeToString(sum[:])
	s.cert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	ln, err := net.Listen("tcp", s.cfg.LANAddr)
	if err != nil {
		return fmt.Errorf("failed to listen for the UI on %s: %w", s.cfg.LANAddr, err)
	}
	s.lanLn = ln
	return nil
}

func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{*s.cert}, MinVersion: tls.VersionTLS13}
}

// LANInfo is how another device reaches the UI.
type LANInfo struct {
	URL         string `json:"url"`         // with the secret and the fingerprint
	Fingerprint string `json:"fingerprint"` // SHA-256 of the certificate, hex
}

// lanInfo is nil unless the UI is served on the LAN.
func (s *Server) lanInfo() *LANInfo {
	if s.lanLn == nil {
		return nil
	}
	return &LANInfo{URL: s.LANURL(), Fingerprint: s.certFP}
}

// LANURL is the pairing link for another device: the secret, and the
// certificate's fingerprint after # (never sent to the server).
func (s *Server) LANURL() string {
	if s.lanLn == nil {
		return ""
	}
	return "https://" + s.lanLn.Addr().String() + "/open?k=" + url.QueryEscape(s.secret) + "#sha256=" + s.certFP
}
