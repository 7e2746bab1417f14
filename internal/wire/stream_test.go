package wire

import "testing"

func TestValidStreamName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{DefaultStream, true},
		{"events_2-b", true},
		{"ÉVÉNEMENTS", true},
		{"", false},
		{"a.b", false},
		{"a*", false},
		{"a>", false},
		{"a/b", false},
		{`a\b`, false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\x00b", false},
		{"a\u00a0b", false}, // no-break space
	}
	for _, tt := range tests {
		err := ValidStreamName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidStreamName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
