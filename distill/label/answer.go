package label

import "fmt"

// Answer is a label's verdict about its pair, in the record's terms: First means the
// record's frame A shows more progress.
type Answer string

// The four answers of the Labels contract.
const (
	First   Answer = "first"
	Second  Answer = "second"
	Tie     Answer = "tie"
	Abstain Answer = "abstain" // skipped, unsure, unparsable, or an order disagreement that was dropped
)

// Valid reports whether a is one of the four answers.
func (a Answer) Valid() bool { return a == First || a == Second || a == Tie || a == Abstain }

// Choice is one answer of a judge that was shown two frames, in the terms of the
// question: ChoiceFirst is the frame shown first. Consistent maps choices back to the
// pair's A and B.
type Choice uint8

// Choices. ChoiceInvalid is an answer that could not be read.
const (
	ChoiceInvalid Choice = iota
	ChoiceFirst
	ChoiceSecond
	ChoiceEqual
	ChoiceUnsure
)

var choiceNames = [...]string{"invalid", "first", "second", "equal", "unsure"}

func (c Choice) String() string {
	if int(c) < len(choiceNames) {
		return choiceNames[c]
	}
	return fmt.Sprintf("choice(%d)", c)
}

// MarshalText implements encoding.TextMarshaler.
func (c Choice) MarshalText() ([]byte, error) {
	if int(c) >= len(choiceNames) {
		return nil, fmt.Errorf("label: invalid choice %d", c)
	}
	return []byte(choiceNames[c]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Choice) UnmarshalText(b []byte) error {
	for i, n := range choiceNames {
		if string(b) == n {
			*c = Choice(i)
			return nil
		}
	}
	return fmt.Errorf("label: unknown choice %q", b)
}

// Swap exchanges first and second: the same answer seen from the other order.
func (c Choice) Swap() Choice {
	switch c {
	case ChoiceFirst:
		return ChoiceSecond
	case ChoiceSecond:
		return ChoiceFirst
	}
	return c
}

// Answer converts a choice in record terms to an Answer (unsure and invalid abstain).
func (c Choice) Answer() Answer {
	switch c {
	case ChoiceFirst:
		return First
	case ChoiceSecond:
		return Second
	case ChoiceEqual:
		return Tie
	}
	return Abstain
}

// Order is the order in which a pair's frames are shown to a judge.
type Order uint8

// OrderAB shows A first; OrderBA shows B first.
const (
	OrderAB Order = iota
	OrderBA
)

func (o Order) String() string {
	if o == OrderBA {
		return "ba"
	}
	return "ab"
}

// MarshalText implements encoding.TextMarshaler.
func (o Order) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Order) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ab":
		*o = OrderAB
	case "ba":
		*o = OrderBA
	default:
		return fmt.Errorf("label: unknown order %q", b)
	}
	return nil
}
