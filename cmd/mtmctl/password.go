package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// password returns the password from, in order: --password-file, the
// MTM_PASSWORD variable, or stdin (a hidden prompt on a terminal, else its
// first line). confirm asks twice on a terminal.
func password(sys system, file string, confirm bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		p := trimNewline(string(b))
		if p == "" {
			return "", fmt.Errorf("password file %s is empty", file)
		}
		return p, nil
	}
	if p := sys.getenv("MTM_PASSWORD"); p != "" {
		return p, nil
	}
	if f, ok := sys.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p, err := prompt(f, sys.stderr, "Password: ")
		if err != nil || !confirm {
			return p, err
		}
		again, err := prompt(f, sys.stderr, "Password again: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the passwords differ")
		}
		return p, nil
	}
	line, err := bufio.NewReader(sys.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password from stdin: %w", err)
	}
	if line = trimNewline(line); line == "" {
		return "", errors.New("no password: use --password-file, MTM_PASSWORD or stdin")
	}
	return line, nil
}

func prompt(f *os.File, w io.Writer, label string) (string, error) {
	fmt.Fprint(w, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	return string(b), nil
}

// trimNewline drops one trailing line ending, keeping other whitespace,
// which may be part of a password.
func trimNewline(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}
