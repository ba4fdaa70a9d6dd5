module example.com/peerlabexample

go 1.19
