package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// View is what a page template gets as its dot: the page's own Data plus
// what the layout needs. Pages fill Title, Nav, Data and, after a refused
// form, Form; Render fills the rest.
type View struct {
	Title string // the <title> and the page's <h1>
	// Nav marks the current navigation entry: "inbox", "patients",
	// "worklists" or "admin".
	Nav  string
	Data any
	// Form holds the API's refusal of a posted form, to show next to
	// its fields (nil when there is none).
	Form *FormErrors
	// Flash is a one-line confirmation ("Reply sent.").
	Flash string

	Session *Session
	CSRF    string // the token every form posts as "csrf"
}

// layouts are the templates every page is parsed with.
var layouts = []string{"templates/layout.html", "templates/patients_partials.html"}

func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).Funcs(pageFuncs).ParseFS(templateFS, layouts...)
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		if slices.Contains(layouts, f) {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, err
		}
		pages[path.Base(f)] = t
	}
	return pages, nil
}

// funcs are the helpers templates may call.
var funcs = template.FuncMap{
	// when formats a time for people: "Mon 2 Jan 15:04".
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("Mon 2 Jan 15:04")
	},
	// ts formats a protobuf timestamp like when.
	"ts": func(t *timestamppb.Timestamp) string {
		if t == nil {
			return ""
		}
		return t.AsTime().Local().Format("Mon 2 Jan 15:04")
	},
	// iso is a timestamp for <time datetime>.
	"iso": func(t *timestamppb.Timestamp) string {
		if t == nil {
			return ""
		}
		return t.AsTime().UTC().Format(time.RFC3339)
	},
}

// Render writes the page template tmpl (a file name under templates/)
// with v in the layout, with status. It fills v's Session and CSRF.
func (rq *Request) Render(status int, tmpl string, v View) error {
	v.Session = rq.Session
	v.CSRF = rq.CSRF()
	return rq.c.render(rq.W, status, tmpl, v)
}

// Redirect answers 303 See Other to path (after a successful POST).
func (rq *Request) Redirect(path string) error {
	http.Redirect(rq.W, rq.R, path, http.StatusSeeOther)
	return nil
}

func (c *Console) render(w http.ResponseWriter, status int, tmpl string, v View) error {
	t, ok := c.pages[tmpl]
	if !ok {
		return fmt.Errorf("console: no template %q", tmpl)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("console: rendering %s: %w", tmpl, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// renderError answers status with a page saying msg.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *Session, status int, msg string) {
	v := View{Title: http.StatusText(status), Data: msg, Session: s}
	if s != nil {
		v.CSRF = csrfToken(s.id)
	}
	if err := c.render(w, status, "error.html", v); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: rendering an error page", "error", err.Error())
	}
}

// fail answers a page's error: the API's codes become the pages a
// pharmacist understands; anything else is logged and shown as a failure
// without detail.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *Session, err error) {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated:
		if s != nil {
			c.endSession(w, r, s)
		}
		if r.Method == http.MethodGet {
			http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			return
		}
		c.renderError(w, r, nil, http.StatusUnauthorized, "Your session ended; sign in again.")
	case connect.CodePermissionDenied:
		c.renderError(w, r, s, http.StatusForbidden, "You do not have access to this.")
	case connect.CodeNotFound:
		c.renderError(w, r, s, http.StatusNotFound, "Not found: it does not exist, or it is not your pharmacy's.")
	case connect.CodeInvalidArgument:
		c.renderError(w, r, s, http.StatusBadRequest, "The request was not valid: "+connectMessage(err))
	case connect.CodeAborted:
		c.renderError(w, r, s, http.StatusConflict, "Someone else changed this since you opened it. Go back, reload and try again.")
	case connect.CodeResourceExhausted:
		c.renderError(w, r, s, http.StatusTooManyRequests, "Too many attempts; wait a few minutes and try again.")
	case connect.CodeUnavailable:
		c.renderError(w, r, s, http.StatusServiceUnavailable, "The service is busy or restarting; try again shortly.")
	default:
		c.cfg.Logger.ErrorContext(r.Context(), "console: page failed", "path", r.Pattern, "error", err.Error())
		c.renderError(w, r, s, http.StatusInternalServerError, "Something went wrong; it has been logged.")
	}
}

// FormErrors is the API's refusal of a form, for the page to show next
// to the form instead of an error page.
type FormErrors struct {
	// Fields maps a request field's path ("medication.name") to what is
	// wrong with it.
	Fields map[string]string
	// Message is a sentence for the top of the form.
	Message string
	// Stale: the record changed since the form was loaded (aborted);
	// show the current version.
	Stale bool
	// Denied: permission_denied.
	Denied bool
	// Reason is the ErrorInfo reason, when the API gave one.
	Reason string
}

// Field returns the problem with field name, or "" (also on a nil f).
func (f *FormErrors) Field(name string) string {
	if f == nil {
		return ""
	}
	return f.Fields[name]
}

// FormErrorsFrom turns an API error a pharmacist can act on into
// FormErrors: invalid_argument (with the fields named), aborted (stale
// version), already_exists, failed_precondition, permission_denied and
// resource_exhausted. Anything else returns nil, false: return it from
// the page as it is.
func FormErrorsFrom(err error) (*FormErrors, bool) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil, false
	}
	f := &FormErrors{Fields: map[string]string{}, Message: ce.Message()}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			continue
		}
		switch v := v.(type) {
		case *validate.Violations:
			for _, vi := range v.GetViolations() {
				f.Fields[fieldPath(vi.GetField())] = vi.GetMessage()
			}
		case *errdetails.ErrorInfo:
			f.Reason = v.GetReason()
		}
	}
	switch ce.Code() {
	case connect.CodeInvalidArgument:
		f.Message = "Please correct the marked fields."
		if len(f.Fields) == 0 {
			f.Message = "Please correct the form: " + ce.Message()
		}
	case connect.CodeAborted:
		f.Stale = true
		f.Message = "Someone else changed this record since you opened it. The current version is shown below; check it and try again."
	case connect.CodeAlreadyExists, connect.CodeFailedPrecondition:
	case connect.CodePermissionDenied:
		f.Denied = true
		f.Message = "You are not allowed to do this."
	case connect.CodeResourceExhausted:
		f.Message = "Too many attempts; wait a few minutes and try again."
	default:
		return nil, false
	}
	return f, true
}

// fieldPath is a violation's field path as "a.b.c" (indexes and keys
// left out).
func fieldPath(p *validate.FieldPath) string {
	var parts []string
	for _, e := range p.GetElements() {
		parts = append(parts, e.GetFieldName())
	}
	return strings.Join(parts, ".")
}

func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return "unknown error"
}
