with

source as (

    select * from {{ source('raw', 'customers_rejected') }}

),

renamed as (

    select
        source_row_number::bigint as source_row_number,
        -- a CSV's reject table gives an unsigned line number; one type whatever the format
        source_line_number::bigint as source_line_number,
        source_line,
        load_error

    from source

)

select * from renamed
