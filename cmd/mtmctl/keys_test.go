package main

import (
	"strings"
	"testing"
)

// TestKeysCommand: an operator lists, rotates and retires signing keys; the
// newest key signs, and the last key cannot be retired.
func TestKeysCommand(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	out, _, err := c.run("keys", "list", "--signing-key-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.Fields(out)[0]
	if !strings.Contains(out, first+"\tsigns") {
		t.Fatalf("list = %q", out)
	}
	out, _, err = c.run("keys", "rotate", "--signing-key-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.HasPrefix(lines[0], first) || lines[1] != first+"\tverifies" {
		t.Fatalf("after rotate: %q", out)
	}
	out, _, err = c.run("keys", "retire", "--kid", first, "--signing-key-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, first) || len(strings.Split(strings.TrimSpace(out), "\n")) != 1 {
		t.Fatalf("after retire: %q", out)
	}
	last := strings.Fields(out)[0]
	if _, _, err := c.run("keys", "retire", "--kid", last, "--signing-key-dir", dir); err == nil {
		t.Fatal("retiring the last key succeeded")
	}
	if _, _, err := c.run("keys", "list"); err == nil || !strings.Contains(err.Error(), "--signing-key-dir") {
		t.Fatalf("keys without a directory: %v", err)
	}
}
