module robodistill

go 1.24
