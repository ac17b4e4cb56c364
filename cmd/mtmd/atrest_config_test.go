package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestKEKConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     env
		kekFile string
		kekURI  string
		reenc   reencryptFlag
		problem string // a line Validate must report; "" for valid
	}{
		{name: "default key file in the data dir", args: []string{"--data-dir", "/d"}, kekFile: filepath.Join("/d", "phi-kek.json")},
		{name: "key file from the environment", env: env{"MTM_KEK_FILE": "/k/kek.json"}, kekFile: "/k/kek.json"},
		{name: "KMS instead of a file", env: env{"MTM_KEK_URI": "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k"}, kekURI: "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k"},
		{name: "both", args: []string{"--kek-uri", "aws-kms://arn", "--kek-file", "/k"}, kekFile: "/k", kekURI: "aws-kms://arn", problem: "not both"},
		{name: "not a URI", args: []string{"--kek-uri", "my-key"}, kekURI: "my-key", problem: "Tink KMS URI"},
		{name: "no-seal alone is refused", args: []string{"--no-seal"}, kekFile: filepath.Join("mtm-data", "phi-kek.json"), problem: "--bench-endpoints"},
		{name: "no-seal for the load test", args: []string{"--no-seal", "--bench-endpoints"}, kekFile: filepath.Join("mtm-data", "phi-kek.json")},
		{name: "reencrypt", args: []string{"--reencrypt"}, kekFile: filepath.Join("mtm-data", "phi-kek.json"), reenc: "seal"},
		{name: "reencrypt rotate", env: env{"MTM_REENCRYPT": "rotate"}, kekFile: filepath.Join("mtm-data", "phi-kek.json"), reenc: "rotate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, tt.env.get)
			if err != nil {
				t.Fatal(err)
			}
			if c.KEKFile != tt.kekFile || c.KEKURI != tt.kekURI || c.Reencrypt != tt.reenc {
				t.Errorf("kek file %q uri %q reencrypt %q; want %q %q %q", c.KEKFile, c.KEKURI, c.Reencrypt, tt.kekFile, tt.kekURI, tt.reenc)
			}
			err = c.Validate()
			switch {
			case tt.problem == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.problem != "" && (err == nil || !strings.Contains(err.Error(), tt.problem)):
				t.Errorf("Validate = %v, want a problem mentioning %q", err, tt.problem)
			}
		})
	}
	if _, err := parseConfig([]string{"--reencrypt=sideways"}, env{}.get); err == nil {
		t.Error("--reencrypt=sideways accepted")
	}
	var help strings.Builder
	usage(&help)
	if strings.Contains(help.String(), "no-seal") || !strings.Contains(help.String(), "--kek-file") {
		t.Errorf("--help shows --no-seal or misses --kek-file:\n%s", help.String())
	}
}
