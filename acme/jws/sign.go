package jws

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"
)

// The signing side is small on purpose: it serves tests and the bench
// client, not production clients.

type signHeader struct {
	Alg   string          `json:"alg"`
	JWK   json.RawMessage `json:"jwk,omitempty"`
	KID   string          `json:"kid,omitempty"`
	Nonce string          `json:"nonce,omitempty"`
	URL   string          `json:"url"`
}

type flattened struct {
	Protected string `json:"protected"`
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

// Sign produces a flattened JSON JWS of payload (nil or empty means
// POST-as-GET). The header carries h.KID when set, else the JWK of key.
// alg defaults to h.Alg, then to AlgFor(key.Public()).
func Sign(key crypto.Signer, alg string, h Header, payload []byte) ([]byte, error) {
	pub := key.Public()
	if alg == "" {
		alg = h.Alg
	}
	if alg == "" {
		alg = AlgFor(pub)
	}
	if err := checkAlgKey(alg, pub); err != nil {
		return nil, err
	}
	sh := signHeader{Alg: alg, KID: h.KID, Nonce: h.Nonce, URL: h.URL}
	if h.KID == "" {
		j, err := MarshalJWK(pub)
		if err != nil {
			return nil, err
		}
		sh.JWK = j
	}
	return sign(sh, payload, func(input []byte) ([]byte, error) { return signInput(key, alg, input) })
}

// SignHMAC produces the HS256 external account binding JWS of RFC 8555
// §7.3.4: kid is the CA-issued key identifier, url the newAccount URL and
// payload the account's JWK.
func SignHMAC(key []byte, kid, url string, payload []byte) ([]byte, error) {
	sh := signHeader{Alg: HS256, KID: kid, URL: url}
	return sign(sh, payload, func(input []byte) ([]byte, error) {
		mac := hmac.New(sha256.New, key)
		mac.Write(input)
		return mac.Sum(nil), nil
	})
}

func sign(sh signHeader, payload []byte, sig func([]byte) ([]byte, error)) ([]byte, error) {
	hb, err := json.Marshal(sh)
	if err != nil {
		return nil, fmt.Errorf("jws: encode header: %w", err)
	}
	f := flattened{Protected: b64.EncodeToString(hb), Payload: b64.EncodeToString(payload)}
	s, err := sig([]byte(f.Protected + "." + f.Payload))
	if err != nil {
		return nil, fmt.Errorf("jws: sign: %w", err)
	}
	f.Signature = b64.EncodeToString(s)
	return json.Marshal(f)
}

func signInput(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	switch alg {
	case RS256:
		d := sha256.Sum256(input)
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	case PS256:
		d := sha256.Sum256(input)
		return key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	case ES256:
		d := sha256.Sum256(input)
		return signECDSA(key, d[:], crypto.SHA256, 32)
	case ES384:
		d := sha512.Sum384(input)
		return signECDSA(key, d[:], crypto.SHA384, 48)
	case ES512:
		d := sha512.Sum512(input)
		return signECDSA(key, d[:], crypto.SHA512, 66)
	case EdDSA:
		return key.Sign(rand.Reader, input, crypto.Hash(0))
	}
	return nil, fmt.Errorf("%w: cannot sign with %q", ErrBadAlgorithm, alg)
}

// signECDSA converts the signer's ASN.1 output to R||S (RFC 7518 §3.4).
func signECDSA(key crypto.Signer, digest []byte, h crypto.Hash, size int) ([]byte, error) {
	der, err := key.Sign(rand.Reader, digest, h)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return nil, fmt.Errorf("decode ECDSA signature: %w", err)
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}
