package firstview

import (
	"fmt"
	"strings"
)

// ParseModes reads a comma-separated list of modes ("direct,gateway,peer"); an empty list is every mode.
func ParseModes(s string) ([]Mode, error) {
	var out []Mode
	for _, f := range strings.Split(s, ",") {
		m := Mode(strings.TrimSpace(f))
		switch m {
		case "":
			continue
		case Direct, Gateway, Peer:
			out = append(out, m)
		default:
			return nil, fmt.Errorf("%w: unknown mode %q (want %s, %s or %s)", ErrConfig, m, Direct, Gateway, Peer)
		}
	}
	if len(out) == 0 {
		return Modes, nil
	}
	return out, nil
}

// ParseNetworks reads a comma-separated list of networks: "emulated" (the network emulated gives) and
// "loopback" (no emulation); an empty list is both, emulated first.
func ParseNetworks(s string, emulated Network) ([]Network, error) {
	var out []Network
	for _, f := range strings.Split(s, ",") {
		switch name := strings.TrimSpace(f); name {
		case "":
			continue
		case "emulated":
			out = append(out, emulated)
		case Loopback.Name:
			out = append(out, Loopback)
		default:
			return nil, fmt.Errorf("%w: unknown network %q (want emulated or loopback)", ErrConfig, name)
		}
	}
	if len(out) == 0 {
		return []Network{emulated, Loopback}, nil
	}
	return out, nil
}
