package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"
)

// number is what a positive flag holds.
type number interface {
	~int | ~int64 | ~float64
}

// positiveFlag is a flag whose value must be positive or, when noLimit, -1 (no limit). The configuration
// treats zero as "the default", so a flag rejects it as it parses: a user who typed 0 meant something else.
type positiveFlag[T number] struct {
	p       *T
	noLimit bool
	dur     bool // T is a time.Duration: parse "1.5s"
}

func (f *positiveFlag[T]) String() string {
	if f.p == nil {
		return ""
	}
	if f.dur {
		return time.Duration(*f.p).String()
	}
	return fmt.Sprint(*f.p)
}

func (f *positiveFlag[T]) Set(s string) error {
	var v T
	switch {
	case f.dur:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v = T(d)
	case isFloat[T]():
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("not a number")
		}
		v = T(x)
	default:
		x, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return errors.New("not a whole number")
		}
		v = T(x)
	}
	switch {
	case f.noLimit && v == -1:
	case !(v > 0): // NaN too
		if f.noLimit {
			return errors.New("want a positive number, or -1 for no limit")
		}
		return errors.New("want a positive value")
	}
	*f.p = v
	return nil
}

// positive registers a flag whose value must be positive (or -1 with noLimit), with default def.
func positive[T number](fs *flag.FlagSet, p *T, name string, def T, usage string, noLimit bool) {
	*p = def
	_, dur := any(p).(*time.Duration)
	fs.Var(&positiveFlag[T]{p: p, noLimit: noLimit, dur: dur}, name, usage)
}

func isFloat[T number]() bool {
	var v T
	_, ok := any(v).(float64)
	return ok
}
