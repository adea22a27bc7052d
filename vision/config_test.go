package vision

import (
	"math"
	"strings"
	"testing"
)

func TestDefaultConfigJSON(t *testing.T) {
	js, err := DefaultConfig().JSON()
	if err != nil {
		t.Fatal(err)
	}
	// The manifest form: changing it changes every model's manifest.
	const want = `{"version":1,"width":64,"height":64,"flip":"none","channels":"rgb","scale":0.00392156862745098,"mean":[0,0,0],"std":[1,1,1]}`
	if string(js) != want {
		t.Errorf("JSON() = %s\nwant      %s", js, want)
	}
	c, err := ParseConfig(js)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equal(DefaultConfig()) {
		t.Errorf("round trip gave %+v", c)
	}
	crop := DefaultConfig()
	crop.Crop = &Rect{1, 2, 3, 4}
	js, _ = crop.JSON()
	if !strings.Contains(string(js), `"crop":{"x":1,"y":2,"width":3,"height":4}`) {
		t.Errorf("crop JSON: %s", js)
	}
	if c, err := ParseConfig(js); err != nil || !c.Equal(crop) || c.Equal(DefaultConfig()) {
		t.Errorf("crop round trip: %+v, %v", c, err)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"channels":"gray","width":32}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Channels, want.Width, want.Mean, want.Std = Gray, 32, []float64{0}, []float64{1}
	if !c.Equal(want) {
		t.Errorf("got %+v, want %+v", c, want)
	}
}

// TestConfigErrors is the table of (input, exact error) every config key is checked by.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{`{"version":2}`, "vision.ParseConfig: version: 2 is not supported (this build implements 1)"},
		{`{"version":0}`, "vision.ParseConfig: version: 0 is not supported (this build implements 1)"},
		{`{"width":0}`, "vision.ParseConfig: width: must be between 1 and 4096, got 0"},
		{`{"height":5000}`, "vision.ParseConfig: height: must be between 1 and 4096, got 5000"},
		{`{"crop":{"x":-1,"y":0,"width":10,"height":10}}`, "vision.ParseConfig: crop.x: must not be negative, got -1"},
		{`{"crop":{"x":0,"y":-3,"width":10,"height":10}}`, "vision.ParseConfig: crop.y: must not be negative, got -3"},
		{`{"crop":{"x":0,"y":0,"width":0,"height":10}}`, "vision.ParseConfig: crop.width: must be positive, got 0"},
		{`{"crop":{"x":0,"y":0,"width":10}}`, "vision.ParseConfig: crop.height: must be positive, got 0"},
		{`{"crop":{"x":9223372036854775807,"y":0,"width":10,"height":1}}`, "vision.ParseConfig: crop: rectangle {X:9223372036854775807 Y:0 Width:10 Height:1} too large"},
		{`{"flip":"diagonal"}`, `vision.ParseConfig: flip: unknown value "diagonal" (want none, horizontal, vertical or both)`},
		{`{"channels":"rgba"}`, `vision.ParseConfig: channels: unknown value "rgba" (want rgb, bgr or gray)`},
		{`{"scale":0}`, "vision.ParseConfig: scale: must be positive and finite, got 0"},
		{`{"scale":-1}`, "vision.ParseConfig: scale: must be positive and finite, got -1"},
		{`{"mean":[0.5]}`, "vision.ParseConfig: mean: 1 values for 3 channels (rgb)"},
		{`{"channels":"gray","std":[1,1,1]}`, "vision.ParseConfig: std: 3 values for 1 channels (gray)"},
		{`{"std":[1,0,1]}`, "vision.ParseConfig: std[1]: must be positive and finite, got 0"},
		{`{"std":[1,1,-2]}`, "vision.ParseConfig: std[2]: must be positive and finite, got -2"},
		{`{"size":64}`, `vision.ParseConfig: json: unknown field "size"`},
		{`{"width":"64"}`, "vision.ParseConfig: json: cannot unmarshal string into Go struct field Config.width of type int"},
		{`{} {}`, "vision.ParseConfig: data after the configuration"},
		{``, "vision.ParseConfig: EOF"},
	}
	for _, tc := range cases {
		_, err := ParseConfig([]byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseConfig(%s)\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
	// Values JSON cannot carry, through Validate directly.
	c := DefaultConfig()
	c.Mean = []float64{0, math.NaN(), 0}
	if err := c.Validate(); err == nil || err.Error() != "mean[1]: must be finite, got NaN" {
		t.Errorf("NaN mean: %v", err)
	}
	if _, err := New(c); err == nil || !strings.HasPrefix(err.Error(), "vision.New: mean[1]") {
		t.Errorf("New with NaN mean: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	js, _ := DefaultConfig().JSON()
	f.Add(js)
	f.Add([]byte(`{"crop":{"x":1,"y":2,"width":3,"height":4},"channels":"gray","mean":[0.5],"std":[0.2]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// Anything accepted is valid, round-trips through its JSON, and builds.
		js, err := c.JSON()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseConfig(js)
		if err != nil || !c2.Equal(c) {
			t.Fatalf("round trip of %s: %+v, %v", js, c2, err)
		}
		if c.Width*c.Height <= 256*256 {
			p, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
		}
	})
}
