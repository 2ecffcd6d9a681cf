package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// FieldError is a rejected value in flanneld's network config. Its message
// names the field, the value and the rule, e.g.
//
//	config: SubnetLen 31: must be at most 30
type FieldError struct {
	Field string // JSON key, dotted inside Backend: "Backend.VNI"
	Value any    // the offending value; nil when there is none to show
	Rule  string
}

func (e *FieldError) Error() string {
	switch v := e.Value.(type) {
	case nil:
		return fmt.Sprintf("config: %s: %s", e.Field, e.Rule)
	case string:
		return fmt.Sprintf("config: %s %q: %s", e.Field, v, e.Rule)
	default:
		return fmt.Sprintf("config: %s %v: %s", e.Field, v, e.Rule)
	}
}

func fieldErr(field string, value any, rule string, args ...any) error {
	return &FieldError{Field: field, Value: value, Rule: fmt.Sprintf(rule, args...)}
}

// jsonErr turns encoding/json's errors into ones naming the field; within
// names the enclosing object ("" at the top, "Backend" inside it).
func jsonErr(within string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if within != "" {
			field = within + "." + field
		}
		if te.Field == "" {
			field = within
		}
		if field == "" {
			return fmt.Errorf("config: JSON %s: the config must be a JSON object", te.Value)
		}
		if te.Field == "" {
			return fieldErr(field, nil, "JSON %s: must be a JSON object", te.Value)
		}
		return fieldErr(field, nil, "JSON %s: must be %s", te.Value, jsonKind(te.Type))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("config: invalid JSON at byte %d: %w", se.Offset, err)
	}
	return fmt.Errorf("config: %w", err)
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "of type " + t.String()
}
